#!/usr/bin/env python3
"""Validates EmotionTap events (one JSON object per line) against config/event-schema.json.

Usage: validate_events.py SCHEMA EVENTS.jsonl
Prints one line per invalid event and a closing count; exit status 1 if any event is invalid.
"""
import json
import sys

import jsonschema


def main() -> int:
    schema = json.load(open(sys.argv[1]))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    total = bad = 0
    for number, line in enumerate(open(sys.argv[2]), 1):
        if not line.strip():
            continue
        total += 1
        if len(line.encode()) > 1200:
            bad += 1
            print(f"line {number}: {len(line.encode())} bytes, over the 1,200-byte datagram limit")
        event = json.loads(line)
        for error in validator.iter_errors(event):
            bad += 1
            print(f"line {number} ({event.get('type')}): {error.message}")
    print(f"validated {total} events, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
