"""The boundary: table schemas, reading the inputs, the feed checks, writing the outputs, partitions."""
