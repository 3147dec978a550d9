"""dljobs: distributed deep-learning training jobs on Ray and Kubernetes."""

__version__ = "0.1.0"
