"""Which autograd nodes a tensor's graph holds: tests check that a fast path really ran."""
import torch


def autograd_node_names(out: torch.Tensor) -> set[str]:
    """The class names of every node of the autograd graph of ``out``."""
    seen, todo = set(), [out.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        todo.extend(next_node for next_node, _ in node.next_functions)
    return {type(node).__name__ for node in seen}
