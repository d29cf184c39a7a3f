"""The models and what they are conditioned on: ImageNet classes, class lists, the generator, the weight store."""
