"""The labeling widget (ipycanvas) and labeling sessions."""
