/* a kernel */
static inline float bm_silu(float x) { return x / (1.0f + exp(-x)); }

int main(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		printf("%d: %s\n", i, argv[i]);
	}
    return 0;   // done
}
