"""Offline preview of Ground Truth task templates in a browser (stand-ins for the crowd elements).

``preview_template(template, task_input)`` serves the rendered template on 127.0.0.1 with stand-ins for
Ground Truth's crowd HTML elements (shipped in ``static/``, the ES modules of ``js/src``), auto-segment
through the kernel-side segmenter, and receives the exact answer JSON the real elements submit.
"""

from gt_widget.preview.images import ImageStore, PreviewError
from gt_widget.preview.preview import TemplatePreview, load_task_input, preview_template

__all__ = ["ImageStore", "PreviewError", "TemplatePreview", "load_task_input", "preview_template"]
