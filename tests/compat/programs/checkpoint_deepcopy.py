# gradkit compat corpus: habits around checkpoints and copies (a best-model snapshot
# with copy.deepcopy, an EMA target network updated through .data / in place under
# no_grad, state_dict round trips through save/load, pickling a tensor, named_modules,
# apply for init, a forward hook). Written for gradkit's tests; runs unchanged on torch.
import copy
import os
import pickle
import tempfile

import numpy as np
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))


def init_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.constant_(m.weight, 0.05)
        nn.init.zeros_(m.bias)


model.apply(init_weights)
names = [name for name, _ in model.named_modules()]
assert names == ["", "0", "1", "2"], names
captured = []
handle = model[1].register_forward_hook(lambda mod, inp, out: captured.append(out.shape))

target = copy.deepcopy(model)
for p in target.parameters():
    p.requires_grad_(False)

rng = np.random.default_rng(0)
x = torch.from_numpy(rng.standard_normal((32, 8)).astype(np.float32))
y = torch.from_numpy(rng.standard_normal((32, 2)).astype(np.float32))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
best, best_state = float("inf"), None
for step in range(20):
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    with torch.no_grad():
        for pt, p in zip(target.parameters(), model.parameters()):
            pt.data.mul_(0.9).add_(p.data, alpha=0.1)
    if loss.item() < best:
        best, best_state = loss.item(), copy.deepcopy(model.state_dict())
handle.remove()
assert captured and captured[0] == (32, 16) and len(captured) == 20

with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "best.pt")
    torch.save(best_state, path)
    restored = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))
    restored.load_state_dict(torch.load(path))
t = pickle.loads(pickle.dumps(torch.tensor([1.5, 2.5], requires_grad=True)))
assert t.requires_grad and t.tolist() == [1.5, 2.5]
with torch.no_grad():
    ema_out = target(x).sum().item()
    best_out = restored(x).sum().item()
print("RESULT best", best)
print("RESULT ema_out", ema_out)
print("RESULT best_out", best_out)
