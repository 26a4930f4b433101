/* cl_errors.c — names of OpenCL 1.2 error codes and the small status helpers every launcher
 * uses (bm_cl_check, bm_args_check), so error messages name the failing call symbolically. */
#include "error.h"
#include "runtime.h"

const char *bm_cl_error_name(cl_int err)
{
    switch (err) {
#define BM_CL_ERR(name) case name: return #name;
    BM_CL_ERR(CL_SUCCESS)
    BM_CL_ERR(CL_DEVICE_NOT_FOUND)
    BM_CL_ERR(CL_DEVICE_NOT_AVAILABLE)
    BM_CL_ERR(CL_COMPILER_NOT_AVAILABLE)
    BM_CL_ERR(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    BM_CL_ERR(CL_OUT_OF_RESOURCES)
    BM_CL_ERR(CL_OUT_OF_HOST_MEMORY)
    BM_CL_ERR(CL_PROFILING_INFO_NOT_AVAILABLE)
    BM_CL_ERR(CL_MEM_COPY_OVERLAP)
    BM_CL_ERR(CL_IMAGE_FORMAT_MISMATCH)
    BM_CL_ERR(CL_IMAGE_FORMAT_NOT_SUPPORTED)
    BM_CL_ERR(CL_BUILD_PROGRAM_FAILURE)
    BM_CL_ERR(CL_MAP_FAILURE)
    BM_CL_ERR(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    BM_CL_ERR(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    BM_CL_ERR(CL_COMPILE_PROGRAM_FAILURE)
    BM_CL_ERR(CL_LINKER_NOT_AVAILABLE)
    BM_CL_ERR(CL_LINK_PROGRAM_FAILURE)
    BM_CL_ERR(CL_DEVICE_PARTITION_FAILED)
    BM_CL_ERR(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
    BM_CL_ERR(CL_INVALID_VALUE)
    BM_CL_ERR(CL_INVALID_DEVICE_TYPE)
    BM_CL_ERR(CL_INVALID_PLATFORM)
    BM_CL_ERR(CL_INVALID_DEVICE)
    BM_CL_ERR(CL_INVALID_CONTEXT)
    BM_CL_ERR(CL_INVALID_QUEUE_PROPERTIES)
    BM_CL_ERR(CL_INVALID_COMMAND_QUEUE)
    BM_CL_ERR(CL_INVALID_HOST_PTR)
    BM_CL_ERR(CL_INVALID_MEM_OBJECT)
    BM_CL_ERR(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
    BM_CL_ERR(CL_INVALID_IMAGE_SIZE)
    BM_CL_ERR(CL_INVALID_SAMPLER)
    BM_CL_ERR(CL_INVALID_BINARY)
    BM_CL_ERR(CL_INVALID_BUILD_OPTIONS)
    BM_CL_ERR(CL_INVALID_PROGRAM)
    BM_CL_ERR(CL_INVALID_PROGRAM_EXECUTABLE)
    BM_CL_ERR(CL_INVALID_KERNEL_NAME)
    BM_CL_ERR(CL_INVALID_KERNEL_DEFINITION)
    BM_CL_ERR(CL_INVALID_KERNEL)
    BM_CL_ERR(CL_INVALID_ARG_INDEX)
    BM_CL_ERR(CL_INVALID_ARG_VALUE)
    BM_CL_ERR(CL_INVALID_ARG_SIZE)
    BM_CL_ERR(CL_INVALID_KERNEL_ARGS)
    BM_CL_ERR(CL_INVALID_WORK_DIMENSION)
    BM_CL_ERR(CL_INVALID_WORK_GROUP_SIZE)
    BM_CL_ERR(CL_INVALID_WORK_ITEM_SIZE)
    BM_CL_ERR(CL_INVALID_GLOBAL_OFFSET)
    BM_CL_ERR(CL_INVALID_EVENT_WAIT_LIST)
    BM_CL_ERR(CL_INVALID_EVENT)
    BM_CL_ERR(CL_INVALID_OPERATION)
    BM_CL_ERR(CL_INVALID_GL_OBJECT)
    BM_CL_ERR(CL_INVALID_BUFFER_SIZE)
    BM_CL_ERR(CL_INVALID_MIP_LEVEL)
    BM_CL_ERR(CL_INVALID_GLOBAL_WORK_SIZE)
    BM_CL_ERR(CL_INVALID_PROPERTY)
    BM_CL_ERR(CL_INVALID_IMAGE_DESCRIPTOR)
    BM_CL_ERR(CL_INVALID_COMPILER_OPTIONS)
    BM_CL_ERR(CL_INVALID_LINKER_OPTIONS)
    BM_CL_ERR(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef BM_CL_ERR
    /* Codes from the ICD loader and common extensions, seen in practice. */
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    case -1000: return "CL_INVALID_GL_SHAREGROUP_REFERENCE_KHR";
    default: return "CL_UNKNOWN_ERROR";
    }
}

int bm_cl_check(cl_int err, const char *what)
{
    if (err == CL_SUCCESS) return 0;
    return bm_fail(BMOJO_EOPENCL, "OpenCL call `%s` failed: %s (%d)", what ? what : "?", bm_cl_error_name(err),
                   (int)err);
}

int bm_args_check(cl_int err, const char *kernel_name)
{
    /* The setters' codes are OR-ed together by callers, so the exact code may be mangled; the
     * kernel name is what identifies the mistake (an argument of the wrong size or index). */
    if (err == CL_SUCCESS) return 0;
    return bm_fail(BMOJO_EOPENCL, "setting arguments of kernel %s failed: %s (%d)", kernel_name ? kernel_name : "?",
                   bm_cl_error_name(err), (int)err);
}
