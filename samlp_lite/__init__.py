"""samlp_lite: SA-MLP (Chen et al., TMLR 2024) — distilling GNNs into structure-aware MLPs."""
from samlp_lite.runtime import pick_device, seed_everything, smoke_mode

__version__ = "0.1.0"
__all__ = ["pick_device", "seed_everything", "smoke_mode", "__version__"]
