// Package mutate holds deliberate bugs that the simulator (package sim)
// must catch: each is a switch the product's code reads at the one place
// the bug would be. Built normally they are constants, false, and the
// compiler removes the code they guard; built with the tag simmutate
// (make sim-mutants) they are variables a test turns on, one at a time,
// to show that a history the simulator runs fails when the promise the
// code keeps is broken.
package mutate
