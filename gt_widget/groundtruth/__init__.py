"""Ground Truth formats, templates, manifests and the CreateLabelingJob tooling."""
