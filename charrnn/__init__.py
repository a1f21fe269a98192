"""charrnn: recurrent language models you can train, sample and look inside."""

__version__ = "0.1.0"
