# gradkit compat corpus: a classifier trained from a DataLoader over a TensorDataset,
# with CrossEntropyLoss, Adam, clip_grad_norm_ and a held-out Subset. Written for
# gradkit's tests; runs unchanged on torch.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset, TensorDataset


def init_from_numpy(model, seed):
    rng = np.random.default_rng(seed)
    state = {}
    for k, v in model.state_dict().items():
        if v.dtype.is_floating_point:
            v = torch.from_numpy((0.2 * rng.standard_normal(tuple(v.shape))).astype(np.float32))
        state[k] = v
    model.load_state_dict(state)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 64)
        self.fc2 = nn.Linear(64, 64)
        self.fc3 = nn.Linear(64, 3)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.leaky_relu(self.fc2(x), 0.1)
        return self.fc3(x)


rng = np.random.default_rng(0)
X = rng.standard_normal((600, 20)).astype(np.float32)
W = rng.standard_normal((20, 3)).astype(np.float32)
Y = (X @ W).argmax(1)
dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(Y))
train = Subset(dataset, range(0, 500))
test = Subset(dataset, range(500, 600))
loader = DataLoader(train, batch_size=50, shuffle=False, drop_last=True)

model = Net()
init_from_numpy(model, 1)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
crit = nn.CrossEntropyLoss()
for epoch in range(5):
    total = 0.0
    for xb, yb in loader:
        opt.zero_grad()
        loss = crit(model(xb), yb)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        opt.step()
        total += loss.item() * xb.shape[0]
    print(f"epoch {epoch}: loss {total / len(train):.4f}")

model.eval()
correct = 0
with torch.no_grad():
    for xb, yb in DataLoader(test, batch_size=32):
        pred = model(xb).argmax(dim=1)
        correct += pred.eq(yb.view_as(pred)).sum().item()
print("RESULT train_loss", total / len(train))
print("RESULT test_correct", correct)
assert correct > 60
