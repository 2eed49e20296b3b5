#!/bin/sh
cat /opt/app/net.txt /opt/app/file1 /opt/app/file2
cat '/opt/app/data[1].txt'
