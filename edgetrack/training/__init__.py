"""Distilling students from Siamese teachers (TSsKD). Requires torch (``edgetrack[train]``)."""
