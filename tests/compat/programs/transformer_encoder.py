# gradkit compat corpus: a TransformerEncoder language model with positional encoding
# and a square subsequent mask (the idiom of PyTorch's word-language-model example),
# trained a few steps with SGD, gradient clipping and StepLR. Written for gradkit's
# tests; runs unchanged on torch.
import math

import numpy as np
import torch
import torch.nn as nn


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=64):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        pe = pe.unsqueeze(0).transpose(0, 1)
        self.register_buffer("pe", pe)

    def forward(self, x):
        x = x + self.pe[:x.size(0), :]
        return self.dropout(x)


class TransformerModel(nn.Module):
    def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.0):
        super().__init__()
        self.pos_encoder = PositionalEncoding(ninp, dropout)
        encoder_layers = nn.TransformerEncoderLayer(ninp, nhead, nhid, dropout)
        self.transformer_encoder = nn.TransformerEncoder(encoder_layers, nlayers)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.ninp = ninp
        self.decoder = nn.Linear(ninp, ntoken)

    def forward(self, src, src_mask):
        src = self.encoder(src) * math.sqrt(self.ninp)
        src = self.pos_encoder(src)
        output = self.transformer_encoder(src, src_mask)
        output = self.decoder(output)
        return nn.functional.log_softmax(output, dim=-1)


ntokens, bptt, batch = 20, 12, 4
model = TransformerModel(ntokens, 16, 2, 32, 2)
rng = np.random.default_rng(0)
state = {}
for k, v in model.state_dict().items():
    if v.dtype.is_floating_point and k != "pos_encoder.pe":
        v = torch.from_numpy((0.1 * rng.standard_normal(tuple(v.shape))).astype(np.float32))
    state[k] = v
model.load_state_dict(state)
seq = rng.integers(0, ntokens, size=(bptt + 1, batch))
data, targets = torch.from_numpy(seq[:-1]), torch.from_numpy(seq[1:]).reshape(-1)
mask = nn.Transformer.generate_square_subsequent_mask(bptt)
criterion = nn.NLLLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1.0, gamma=0.95)
model.train()
for step in range(10):
    optimizer.zero_grad()
    output = model(data, mask)
    loss = criterion(output.view(-1, ntokens), targets)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    optimizer.step()
    scheduler.step()
    print(f"step {step} loss {loss.item():.4f} ppl {math.exp(loss.item()):.2f}")
model.eval()
with torch.no_grad():
    final = criterion(model(data, mask).view(-1, ntokens), targets).item()
print("RESULT loss", final)
