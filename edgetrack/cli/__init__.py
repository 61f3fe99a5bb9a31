"""Command-line entry points (``edgetrack``, ``edgetrack-export``, ``edgetrack-train``)."""
