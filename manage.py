#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simulator_project.settings")
    from django.core.management import execute_from_command_line

    from generators_app.extensions.loader import ExtensionLoadError

    try:
        execute_from_command_line(sys.argv)
    except ExtensionLoadError as error:  # one readable paragraph, not Django's start-up traceback
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
