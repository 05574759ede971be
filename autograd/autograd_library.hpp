#pragma once
// Everything of the autograd layer (and the tensor layer under it) in one include.
#include "autograd/functions.hpp"
#include "autograd/gradient_check.hpp"
#include "autograd/variable.hpp"
#include "tensor/tensor_library.hpp"
