# gradkit compat corpus: nn.Sequential with Flatten and MSELoss, parameters updated by
# hand under no_grad (the "examples_nn" tutorial's idiom). Written for gradkit's tests;
# runs unchanged on torch.
import math

import numpy as np
import torch

x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)
p = torch.tensor([1, 2, 3])
xx = x.unsqueeze(-1).pow(p)

model = torch.nn.Sequential(
    torch.nn.Linear(3, 1),
    torch.nn.Flatten(0, 1),
)
rng = np.random.default_rng(1)
with torch.no_grad():
    for param in model.parameters():
        param.data.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, tuple(param.shape)).astype(np.float32)))

loss_fn = torch.nn.MSELoss(reduction="sum")
learning_rate = 1e-6
for t in range(2000):
    y_pred = model(xx)
    loss = loss_fn(y_pred, y)
    if t % 500 == 99:
        print(t, loss.item())
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        for param in model.parameters():
            param -= learning_rate * param.grad

linear_layer = model[0]
print(f"Result: y = {linear_layer.bias.item()} + {linear_layer.weight[:, 0].item()} x + "
      f"{linear_layer.weight[:, 1].item()} x^2 + {linear_layer.weight[:, 2].item()} x^3")
print("RESULT bias", linear_layer.bias.item())
for i in range(3):
    print("RESULT w%d" % i, linear_layer.weight[:, i].item())
print("RESULT loss", loss.item())
