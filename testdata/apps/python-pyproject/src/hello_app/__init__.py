"""The console script `hello`."""
import sys


def main() -> None:
    print("hello from python")
    print(f"python {sys.version_info.major}.{sys.version_info.minor}")
