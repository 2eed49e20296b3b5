"""Prints a greeting, proving the stdlib (json, ssl) works in the image."""
import json
import ssl


def main() -> None:
    print("hello from python")
    print(json.dumps({"ssl": ssl.OPENSSL_VERSION.split()[0]}, sort_keys=True))


if __name__ == "__main__":
    main()
