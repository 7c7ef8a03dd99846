"""doorface edge runtime: frame -> detect -> align -> embed -> match, with no TensorFlow.

Importing this package is cheap: submodules are imported where they are used, so that
``import edge`` pulls in neither TensorFlow nor OpenCV.
"""

__version__ = "0.1.0"
