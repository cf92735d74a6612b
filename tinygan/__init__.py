"""tinygan: a face DCGAN written from scratch in NumPy/CuPy, with every backward pass by hand."""
__version__ = "0.1.0"
