"""The mock chip."""
def open_url(url, **options):
    raise NotImplementedError
