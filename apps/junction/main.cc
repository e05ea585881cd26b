#include "cli.h"

int main(int argc, char** argv) { return junction::cli::Run(argc, argv); }
