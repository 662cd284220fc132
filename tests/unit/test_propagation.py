"""LightGCN layer averaging in Horner form: values and gradients against the plain sum."""
import pytest
import torch

from magnet.propagation import mean_of_hops


def path_graph() -> torch.Tensor:
    """Symmetric-normalised adjacency of the path 0 – 1 – 2 (degrees 1, 2, 1)."""
    r = 2 ** -0.5
    return torch.tensor([[0.0, r, 0.0], [r, 0.0, r], [0.0, r, 0.0]])


def test_two_layers_on_a_path_by_hand():
    adj = path_graph().to_sparse_csr()
    x = torch.tensor([[1.0], [0.0], [0.0]])
    # Âx = (0, r, 0); Â²x = (1/2, 0, 1/2); mean of the three = ((1 + 1/2), r, 1/2) / 3
    r = 2 ** -0.5
    expected = torch.tensor([[1.5 / 3], [r / 3], [0.5 / 3]])
    torch.testing.assert_close(mean_of_hops(adj, x, 2), expected)


def test_zero_layers_is_the_input():
    x = torch.randn(3, 4)
    assert mean_of_hops(path_graph().to_sparse_csr(), x, 0) is x


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_values_and_gradients_match_the_plain_sum(n_layers):
    torch.manual_seed(n_layers)
    dense = torch.rand(9, 9)
    dense = (dense + dense.T) * (torch.rand(9, 9) < 0.4)  # sparse, symmetric
    dense = dense + dense.T
    adj = dense.to_sparse_csr()
    x = torch.randn(9, 5, requires_grad=True)
    upstream = torch.randn(9, 5)
    out = mean_of_hops(adj, x, n_layers)
    (grad,) = torch.autograd.grad(out, x, upstream)
    hops, total = x, x
    for _ in range(n_layers):
        hops = dense @ hops
        total = total + hops
    plain = total / (n_layers + 1)
    (plain_grad,) = torch.autograd.grad(plain, x, upstream)
    torch.testing.assert_close(out, plain, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, plain_grad, rtol=1e-5, atol=1e-6)


def test_non_symmetric_operator_uses_its_transpose_in_the_backward():
    torch.manual_seed(0)
    dense = torch.rand(6, 6) * (torch.rand(6, 6) < 0.5)
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    adj, adj_t = dense.double().to_sparse_csr(), dense.double().T.contiguous().to_sparse_csr()
    assert torch.autograd.gradcheck(lambda v: mean_of_hops(adj, v, 2, adj_t), (x,))
