"""accuracy: detection accuracy in task terms (COCO mAP), of the artifact against the PyTorch reference.

`decode` turns declared outputs (recipe.outputs semantics) into per-image detections, `coco`
scores them with faster-coco-eval (COCO's own evaluation, not a hand-written mAP), `labels` reads
a labelled set (COCO JSON or YOLO label files), `gate` decides.
"""
