# two steps: merge each 2-deep array of a 3-deep array (merge.cwl), then cut the merged files.
cwlVersion: v1.0
class: Workflow
requirements:
  ScatterFeatureRequirement: {}
  SubworkflowFeatureRequirement: {}
inputs:
  smallfiles:
    type:
      type: array
      items:
        type: array
        items:
          type: array
          items: File
outputs:
  merged_and_cut:
    type: File
    outputSource: cut/cut_file
steps:
  merge:
    run: merge.cwl
    scatter: smallfiles
    in:
      smallfiles: smallfiles
    out: [merged]
  cut:
    run: cut.cwl
    in:
      files: merge/merged
    out: [cut_file]
