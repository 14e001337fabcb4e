"""Small operator tools (data checks, calibration, benchmarks); run as ``python -m scripts.<name>``."""
