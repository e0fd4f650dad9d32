# gradkit compat corpus: a bidirectional GRU sequence tagger with ELU, dropout between
# layers switched off in eval, NLLLoss and an ExponentialLR schedule (the idiom of the
# "sequence models" NLP tutorial). Written for gradkit's tests; runs unchanged on torch.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

training_data = [
    ("The dog ate the apple".split(), ["DET", "NN", "V", "DET", "NN"]),
    ("Everybody read that book".split(), ["NN", "V", "DET", "NN"]),
]
word_to_ix = {}
for sent, tags in training_data:
    for word in sent:
        if word not in word_to_ix:
            word_to_ix[word] = len(word_to_ix)
tag_to_ix = {"DET": 0, "NN": 1, "V": 2}


def prepare_sequence(seq, to_ix):
    return torch.tensor([to_ix[w] for w in seq], dtype=torch.long)


class Tagger(nn.Module):
    def __init__(self, embedding_dim, hidden_dim, vocab_size, tagset_size):
        super(Tagger, self).__init__()
        self.word_embeddings = nn.Embedding(vocab_size, embedding_dim)
        self.gru = nn.GRU(embedding_dim, hidden_dim, num_layers=2, bidirectional=True,
                          batch_first=True, dropout=0.2)
        self.hidden2tag = nn.Linear(2 * hidden_dim, tagset_size)

    def forward(self, sentence):
        embeds = self.word_embeddings(sentence)
        out, h_n = self.gru(embeds.unsqueeze(0))
        tag_space = self.hidden2tag(F.elu(out.squeeze(0)))
        return F.log_softmax(tag_space, dim=1)


model = Tagger(6, 6, len(word_to_ix), len(tag_to_ix))
rng = np.random.default_rng(0)
model.load_state_dict({k: torch.from_numpy((0.3 * rng.standard_normal(tuple(v.shape))).astype(np.float32))
                       for k, v in model.state_dict().items()})
model.eval()  # dropout off: both frameworks take the same path
loss_function = nn.NLLLoss()
optimizer = optim.SGD(model.parameters(), lr=0.1)
scheduler = optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.98)
for epoch in range(60):
    for sentence, tags in training_data:
        model.zero_grad()
        tag_scores = model(prepare_sequence(sentence, word_to_ix))
        loss = loss_function(tag_scores, prepare_sequence(tags, tag_to_ix))
        loss.backward()
        optimizer.step()
    scheduler.step()
with torch.no_grad():
    tag_scores = model(prepare_sequence(training_data[0][0], word_to_ix))
print(tag_scores)
print("RESULT loss", loss.item())
print("RESULT score00", tag_scores[0, 0].item())
print("RESULT correct", (tag_scores.argmax(1) == prepare_sequence(training_data[0][1], tag_to_ix)).sum().item())
