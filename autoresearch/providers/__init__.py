"""Model providers: one module per wire format, created by name through a lazy registry."""
