# gradkit compat corpus: a small CNN in the style of PyTorch's MNIST example (Conv2d,
# max_pool2d, Dropout in eval, Flatten, log_softmax + nll_loss, Adadelta, StepLR) on
# synthetic images. Written for gradkit's tests; runs unchanged on torch.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.fc1 = nn.Linear(16 * 5 * 5, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def init_from_numpy(model, seed):
    rng = np.random.default_rng(seed)
    state = {}
    for k, v in model.state_dict().items():
        if v.dtype.is_floating_point:
            v = torch.from_numpy((0.2 * rng.standard_normal(tuple(v.shape))).astype(np.float32))
        state[k] = v
    model.load_state_dict(state)


rng = np.random.default_rng(0)
images = rng.standard_normal((128, 1, 14, 14)).astype(np.float32)
labels = (images[:, 0, :7, :7].mean((1, 2)) > 0).astype(np.int64) * 2 + \
         (images[:, 0, 7:, 7:].mean((1, 2)) > 0).astype(np.int64)
data, target = torch.from_numpy(images), torch.from_numpy(labels)

model = Net()
init_from_numpy(model, 3)
model.eval()  # dropout off, so both frameworks follow the same path
optimizer = optim.Adadelta(model.parameters(), lr=1.0)
scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
for epoch in range(1, 4):
    for i in range(0, 128, 32):
        optimizer.zero_grad()
        output = model(data[i:i + 32])
        loss = F.nll_loss(output, target[i:i + 32])
        loss.backward()
        optimizer.step()
    print(f"Train Epoch: {epoch}\tLoss: {loss.item():.6f}")
    scheduler.step()

with torch.no_grad():
    output = model(data)
    test_loss = F.nll_loss(output, target, reduction="sum").item() / 128
    pred = output.argmax(dim=1, keepdim=True)
    correct = pred.eq(target.view_as(pred)).sum().item()
print("RESULT test_loss", test_loss)
print("RESULT correct", correct)
