#!/bin/sh
echo "placeholder: bench test not written"; echo "0 passed, 1 failed"; exit 1
