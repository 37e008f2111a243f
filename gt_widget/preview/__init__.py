"""Offline preview of Ground Truth task templates in a browser (stand-ins for the crowd elements)."""
