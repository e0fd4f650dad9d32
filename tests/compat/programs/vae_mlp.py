# gradkit compat corpus: a variational autoencoder (the idiom of PyTorch's VAE
# example: reparameterisation, binary_cross_entropy with reduction='sum', KL term) on
# synthetic data, with the noise drawn from NumPy so runs are comparable. Written for
# gradkit's tests; runs unchanged on torch.
import numpy as np
import torch
from torch import nn, optim
from torch.nn import functional as F


class VAE(nn.Module):
    def __init__(self):
        super(VAE, self).__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc21 = nn.Linear(32, 4)
        self.fc22 = nn.Linear(32, 4)
        self.fc3 = nn.Linear(4, 32)
        self.fc4 = nn.Linear(32, 64)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar, eps):
        std = torch.exp(0.5 * logvar)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x, eps):
        mu, logvar = self.encode(x.view(-1, 64))
        z = self.reparameterize(mu, logvar, eps)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 64), reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


rng = np.random.default_rng(0)
model = VAE()
model.load_state_dict({k: torch.from_numpy((0.2 * rng.standard_normal(tuple(v.shape))).astype(np.float32))
                       for k, v in model.state_dict().items()})
optimizer = optim.Adam(model.parameters(), lr=1e-3)
data = torch.from_numpy((rng.random((64, 8, 8)) > 0.5).astype(np.float32))
model.train()
for epoch in range(1, 21):
    eps = torch.from_numpy(rng.standard_normal((64, 4)).astype(np.float32))
    optimizer.zero_grad()
    recon_batch, mu, logvar = model(data, eps)
    loss = loss_function(recon_batch, data, mu, logvar)
    loss.backward()
    optimizer.step()
    if epoch % 5 == 0:
        print("====> Epoch: {} Average loss: {:.4f}".format(epoch, loss.item() / len(data)))
print("RESULT loss", loss.item() / len(data))
