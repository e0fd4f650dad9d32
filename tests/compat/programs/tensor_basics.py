# gradkit compat corpus: the tensor basics a first PyTorch tutorial walks through
# (creation, shapes and Size, views, indexing, NumPy bridge, out=, in place, printing,
# device checks). Written for gradkit's tests; runs unchanged on torch.
import numpy as np
import torch

device = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
torch.cuda.manual_seed_all(0)
print(f"Using {device} device")

data = [[1, 2], [3, 4]]
x_data = torch.tensor(data)
x_np = torch.from_numpy(np.array(data))
x_ones = torch.ones_like(x_data)
x_rand = torch.rand_like(x_data, dtype=torch.float)
print(x_ones)
shape = (2, 3,)
zeros = torch.zeros(shape)
e = torch.empty(size=(2, 3))
assert e.shape == zeros.shape == torch.Size([2, 3])
print(zeros.shape, zeros.size(), zeros.size(1), zeros.dtype, zeros.device)

t = torch.arange(12.0).view(3, 4)
print(f"First row: {t[0]}")
print(f"Last column: {t[..., -1]}")
t[:, 1] = 0
t1 = torch.cat([t, t, t], dim=1)
y1 = t @ t.T
y2 = t.matmul(t.T)
y3 = torch.empty_like(y1)
torch.matmul(t, t.T, out=y3)
assert torch.equal(y1, y2) and torch.equal(y1, y3)
m = t.t().mm(t)
z1 = t * t
agg = t.sum()
agg_item = agg.item()
print(agg_item, type(agg_item))
t.add_(5)

n = np.ones(5)
tn = torch.from_numpy(n)
np.add(n, 1, out=n)
assert tn.tolist() == [2.0] * 5
back = tn.numpy()

v = torch.randn(4, 4)
w = v.view(16)
u = v.view(-1, 8)
assert w.size() == torch.Size([16]) and u.shape[1] == 8
assert u.view_as(v).shape == v.shape
rows = torch.arange(6).view(2, 3).unbind(0)
assert [r.tolist() for r in rows] == [[0, 1, 2], [3, 4, 5]]
r = torch.roll(torch.arange(5), 2)
perm = torch.randperm(10)
assert sorted(perm.tolist()) == list(range(10))
ri = torch.randint(10, (3, 4))
assert ri.shape == (3, 4) and ri.dtype == torch.int64
eq = torch.tensor([1, 2, 3]).eq(torch.tensor([1, 0, 3]))
print(eq, r, f"{torch.tensor(3.14159):.2f}")

print("RESULT mm_sum", m.sum().item())
print("RESULT agg", agg_item)
print("RESULT roll0", r[0].item())
print("RESULT eq", eq.sum().item())
print("RESULT cat_cols", t1.shape[1])
