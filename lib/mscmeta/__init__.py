"""mscmeta: the meta-analysis engine and helpers behind the MSC-in-COVID-19 research bundle."""

__version__ = "0.1.0"
