"""adtk: visual anomaly detection with negative learning (ADNL)."""

__version__ = "0.1.0"

# Idle OpenMP threads sleep instead of spinning. On a CPU shared with other jobs, spinning
# threads made a 2-thread training run ~6x slower (measured: 236 s vs 37 s for one mnist-5k
# run at load 9, identical results). Must be set before torch loads libgomp, hence here.
import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
