package com.example.api;

/** A price quote for one item: what the catalog answers. */
public record Quote(String item, int quantity, long totalCents) {
    public String render() {
        return String.format("%d x %s = %d.%02d", quantity, item, totalCents / 100, totalCents % 100);
    }
}
