# concatenate files.
cwlVersion: v1.0
class: CommandLineTool
hints:
  DockerRequirement:
    dockerPull: ubuntu:20.04
baseCommand: cat
stdout: concatenated
inputs:
  files:
    type: File[]
    inputBinding:
      position: 1
outputs:
  concatenated:
    type: stdout
