"""The torchvision detection source family: model building, synthetic calibration and export."""
