"""adtk: visual anomaly detection with negative learning (ADNL)."""

__version__ = "0.1.0"
