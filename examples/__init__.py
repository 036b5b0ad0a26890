"""Example extensions (docs/extensions.md): load one with SIMULATOR_EXTENSIONS=examples.echo_extension."""
