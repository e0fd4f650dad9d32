# gradkit compat corpus: a sub-pixel super-resolution net (Conv2d + PixelShuffle,
# orthogonal_ init with calculate_gain, MSELoss, Adam) in the idiom of PyTorch's
# super-resolution example, on synthetic images. Written for gradkit's tests; runs
# unchanged on torch.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.init as init
import torch.optim as optim


class Net(nn.Module):
    def __init__(self, upscale_factor):
        super(Net, self).__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(1, 16, (5, 5), (1, 1), (2, 2))
        self.conv2 = nn.Conv2d(16, 16, (3, 3), (1, 1), (1, 1))
        self.conv3 = nn.Conv2d(16, upscale_factor ** 2, (3, 3), (1, 1), (1, 1))
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)
        self._initialize_weights()

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.pixel_shuffle(self.conv3(x))
        return x

    def _initialize_weights(self):
        init.orthogonal_(self.conv1.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv2.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv3.weight)


model = Net(upscale_factor=2)
w = model.conv1.weight.detach().reshape(16, -1)
gram = w @ w.T  # orthogonal rows scaled by the relu gain (2)
assert torch.allclose(gram, 2 * torch.eye(16), atol=1e-4)

rng = np.random.default_rng(0)
with torch.no_grad():
    for p in model.parameters():
        p.copy_(torch.from_numpy((0.1 * rng.standard_normal(tuple(p.shape))).astype(np.float32)))
hr = rng.random((8, 1, 16, 16)).astype(np.float32)
lr_img = hr.reshape(8, 1, 8, 2, 8, 2).mean((3, 5))
inp, target = torch.from_numpy(lr_img), torch.from_numpy(hr)
criterion = nn.MSELoss()
optimizer = optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(15):
    optimizer.zero_grad()
    loss = criterion(model(inp), target)
    loss.backward()
    optimizer.step()
    print(f"Epoch {epoch}: loss {loss.item():.5f} PSNR {10 * np.log10(1 / loss.item()):.2f} dB")
assert model(inp).shape == (8, 1, 16, 16)
print("RESULT loss", loss.item())
