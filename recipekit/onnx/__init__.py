"""The ONNX layer: graph helpers, runtime runners, golden cases, preprocessing and output comparison.

Inside this package `import onnx` still means the onnx library (absolute imports).
"""
