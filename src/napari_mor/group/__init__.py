"""Group studies: voxelwise paired t / correlation maps, permutation FWE, clusters.

Qt-free. Delta-BP = BP_baseline - BP_challenge; positive = activation.
"""

from napari_mor.group.analysis import (
    CLUSTER_COLUMNS,
    GroupResult,
    cluster_table,
    group_mask,
    iter_group_stats,
    load_group_result,
    run_group_stats,
    save_group_result,
)
from napari_mor.group.clusters import (
    CONNECTIVITIES,
    Cluster,
    connectivity_structure,
    find_clusters,
    max_cluster_sizes,
)
from napari_mor.group.labels import atlas_label_image, label_points
from napari_mor.group.permutation import (
    PermutationNull,
    fwe_p,
    iter_permutation_blocks,
    permutation_null,
)
from napari_mor.group.roi import roi_means, roi_tests
from napari_mor.group.stats import (
    TAILS,
    TESTS,
    Design,
    GroupTest,
    correlation_test,
    glm_test,
    make_design,
    one_sample_test,
    p_from_t,
    paired_test,
    t_threshold,
    z_from_t,
)

__all__ = [
    "CLUSTER_COLUMNS",
    "CONNECTIVITIES",
    "TAILS",
    "TESTS",
    "Cluster",
    "Design",
    "GroupResult",
    "GroupTest",
    "PermutationNull",
    "atlas_label_image",
    "cluster_table",
    "connectivity_structure",
    "correlation_test",
    "find_clusters",
    "fwe_p",
    "glm_test",
    "group_mask",
    "iter_group_stats",
    "iter_permutation_blocks",
    "label_points",
    "load_group_result",
    "make_design",
    "max_cluster_sizes",
    "one_sample_test",
    "p_from_t",
    "paired_test",
    "permutation_null",
    "roi_means",
    "roi_tests",
    "run_group_stats",
    "save_group_result",
    "t_threshold",
    "z_from_t",
]
