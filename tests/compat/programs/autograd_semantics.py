# gradkit compat corpus: autograd semantics PyTorch programs and tests rely on
# (Variable, retain_graph, a second backward through a graph that saved nothing,
# create_graph for second derivatives, hooks, .data, inference_mode). Written for
# gradkit's tests; runs unchanged on torch.
import torch
from torch.autograd import Variable

x = Variable(torch.tensor([1.0, 2.0, 3.0]), requires_grad=True)
y = x * x * 3
z = y.sum()
z.backward(retain_graph=True)
g1 = x.grad.clone()
z.backward()
assert torch.allclose(x.grad, 2 * g1)
print("grad after two backward:", x.grad)

b = torch.tensor([1.0, 2.0], requires_grad=True)
c = b + 1
g = torch.ones(2)
c.backward(g)
c.backward(g)  # add saves nothing: a second backward is allowed
assert b.grad.tolist() == [2.0, 2.0]

u = torch.tensor(2.0, requires_grad=True)
f = u ** 3
(df,) = torch.autograd.grad(f, u, create_graph=True)
(d2f,) = torch.autograd.grad(df, u)
print("f'(2) =", df.item(), "f''(2) =", d2f.item())

seen = []
w = torch.tensor([1.0, -1.0], requires_grad=True)
h = w.register_hook(lambda grad: seen.append(grad.clone()) or grad * 2)
(w * w).sum().backward()
h.remove()
assert torch.equal(seen[0], 2 * w.detach())

p = torch.ones(3, requires_grad=True)
p.data.mul_(5)
assert p.requires_grad and p.is_leaf and p.sum().item() == 15

with torch.inference_mode():
    q = p * 2
assert not q.requires_grad

try:
    torch.autograd.grad((p * p).sum(), [p, torch.zeros(1, requires_grad=True)])
except RuntimeError as e:
    assert "allow_unused=True" in str(e), str(e)
else:
    raise AssertionError("unused input accepted")

print("RESULT grad0", x.grad[0].item())
print("RESULT dfdx", df.item())
print("RESULT d2fdx2", d2f.item())
print("RESULT hook", w.grad[1].item())
