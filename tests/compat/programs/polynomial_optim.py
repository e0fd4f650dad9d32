# gradkit compat corpus: the same fit with an optimizer (RMSprop) and a scheduler
# (StepLR). Written for gradkit's tests; runs unchanged on torch.
import math

import numpy as np
import torch
from torch import nn

x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)
p = torch.tensor([1, 2, 3])
xx = x.unsqueeze(-1).pow(p)

model = nn.Sequential(nn.Linear(3, 1), nn.Flatten(0, 1))
rng = np.random.default_rng(2)
with torch.no_grad():
    for param in model.parameters():
        param.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, tuple(param.shape)).astype(np.float32)))
loss_fn = nn.MSELoss(reduction="sum")

optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=500, gamma=0.5)
for t in range(2000):
    y_pred = model(xx)
    loss = loss_fn(y_pred, y)
    if t % 500 == 99:
        print(t, loss.item(), scheduler.get_last_lr())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()

print("RESULT lr", scheduler.get_last_lr()[0])
print("RESULT loss", loss.item())
print("RESULT bias", model[0].bias.item())
