package resolve

// InitialHoldDown is initialHoldDown, for the tests of package resolve_test.
const InitialHoldDown = initialHoldDown
