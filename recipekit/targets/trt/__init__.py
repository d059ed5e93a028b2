"""The TensorRT target family: the engine target, the Jetson bundle and its check program, shape
profiles, the device layer, and the trt-lint gate that checks the ONNX before an engine is built."""
