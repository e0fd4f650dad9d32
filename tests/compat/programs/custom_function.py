# gradkit compat corpus: a custom autograd.Function (the Legendre polynomial P3 of the
# "defining new autograd functions" tutorial). Written for gradkit's tests; runs
# unchanged on torch.
import math

import torch


class LegendrePolynomial3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


dtype = torch.float64
x = torch.linspace(-math.pi, math.pi, 2000, dtype=dtype)
y = torch.sin(x)
a = torch.full((), 0.0, dtype=dtype, requires_grad=True)
b = torch.full((), -1.0, dtype=dtype, requires_grad=True)
c = torch.full((), 0.0, dtype=dtype, requires_grad=True)
d = torch.full((), 0.3, dtype=dtype, requires_grad=True)

learning_rate = 5e-6
for t in range(2000):
    P3 = LegendrePolynomial3.apply
    y_pred = a + b * P3(c + d * x)
    loss = (y_pred - y).pow(2).sum()
    if t % 500 == 99:
        print(t, loss.item())
    loss.backward()
    with torch.no_grad():
        for v in (a, b, c, d):
            v -= learning_rate * v.grad
            v.grad = None

assert torch.autograd.gradcheck(LegendrePolynomial3.apply,
                                (torch.randn(5, dtype=dtype, requires_grad=True),))
print("RESULT loss", loss.item())
for name, v in zip("abcd", (a, b, c, d)):
    print("RESULT", name, v.item())
