"""ONNX / TFLite writers, int8 quantisation and the model bundle (server side)."""
