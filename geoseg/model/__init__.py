"""Inference: model bundles (safetensors + JSON), the model factory, the tile predictor and
test-time augmentation."""
